"""The words of the synthetic city 明湖市: topics, places and stock phrases.

:mod:`generator.synth` draws petitions from these tables. Every name here is
invented; companies are only ever "某" companies, and people only appear as
pseudonyms, so no synthetic record can look like anybody's personal data.
"""

from __future__ import annotations

from dataclasses import dataclass

# Departments of the demo city (departments.yaml) with the categories each
# accepts and its Chinese name; tests check this table against the file.
DEPARTMENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "housing": ("市住房和城乡建设局", ("consultation", "complaint", "help", "suggestion", "report")),
    "transport": ("市交通运输局", ("consultation", "complaint", "help", "suggestion", "report")),
    "urban-management": ("市城市管理局", ("consultation", "complaint", "help", "suggestion", "report")),
    "environment": ("市生态环境局", ("consultation", "complaint", "suggestion", "report")),
    "market-regulation": ("市市场监督管理局", ("consultation", "complaint", "report")),
    "human-resources": ("市人力资源和社会保障局", ("consultation", "complaint", "help")),
    "education": ("市教育局", ("consultation", "complaint", "suggestion")),
    "health": ("市卫生健康委员会", ("consultation", "complaint", "help", "suggestion")),
    "public-security": ("市公安局", ("consultation", "complaint", "help", "report")),
    "water": ("市水务集团", ("consultation", "complaint", "help")),
    "donghu-district": ("东湖区人民政府", ("consultation", "complaint", "help", "suggestion", "report")),
    "xiling-district": ("西岭区人民政府", ("consultation", "complaint", "help", "suggestion", "report")),
    "nangang-district": ("南港区人民政府", ("consultation", "complaint", "help", "suggestion", "report")),
    "donghu-lakeside-street": ("东湖区湖滨街道办事处", ("consultation", "complaint", "help")),
    "xiling-qiaotou-town": ("西岭区桥头镇人民政府", ("consultation", "complaint", "help")),
}

# District -> (district government, township office) where the city has them.
DISTRICTS: tuple[tuple[str, float, str | None, str | None], ...] = (
    ("东湖区", 0.27, "donghu-district", "donghu-lakeside-street"),
    ("西岭区", 0.22, "xiling-district", "xiling-qiaotou-town"),
    ("南港区", 0.20, "nangang-district", None),
    ("北塘区", 0.16, None, None),
    ("明湖新区", 0.15, None, None),
)

ESTATES = ("幸福里小区", "湖畔花园", "锦绣家园", "明湖新村", "翠苑小区", "阳光城", "金色港湾",
           "桂花苑", "东湖名邸", "西岭雅居", "南港佳园", "北塘小区", "滨江一号", "书香苑",
           "和平里", "枫林湾", "春晓苑", "碧水云天")
ROADS = ("明湖大道", "建设路", "人民路", "解放路", "湖滨路", "西岭大街", "南港路", "北塘路",
         "新华街", "文昌路", "长江路", "青年路", "工业大道", "学府路", "环湖东路", "桥头街")
SHOPS = ("烧烤店", "餐馆", "奶茶店", "KTV", "超市", "面包店", "火锅店", "健身房", "洗车店",
         "小吃店", "理发店", "便利店")
COMPANIES = ("某建筑劳务公司", "某物流公司", "某电子厂", "某装修公司", "某餐饮公司",
             "某培训机构", "某物业公司", "某科技公司", "某服装厂")
SCHOOLS = ("明湖实验小学", "东湖第二小学", "西岭中学", "南港初级中学", "文昌小学", "湖滨幼儿园")
HOSPITALS = ("市第一人民医院", "市中医院", "东湖区人民医院", "市妇幼保健院",
             "西岭区社区卫生服务中心")
RIVERS = ("东湖河", "西岭河", "南港运河", "北塘渠")
DURATIONS = ("三天", "一周", "十多天", "半个月", "三周", "一个多月", "两个月")

NICK_WORDS = ("sunny", "xiaoyu", "lake", "mingzi", "tiantian", "ahua", "moon", "river",
              "laoli", "momo", "kk", "dabai", "yezi", "cat", "feifei")
HANDLE_CHARS = "abcdefghijkmnpqrstuvwxyz"

CHANNELS = (("phone", 0.44), ("web", 0.17), ("app", 0.12), ("wechat", 0.13), ("weibo", 0.04),
            ("email", 0.03), ("letter", 0.02), ("visit", 0.05))
CATEGORIES = (("complaint", 0.44), ("consultation", 0.27), ("help", 0.14),
              ("suggestion", 0.08), ("report", 0.07))


@dataclass(frozen=True)
class Topic:
    """One kind of problem citizens raise, with the words for it."""

    key: str
    categories: tuple[str, ...]
    departments: tuple[str, ...]  # city departments that handle it
    local: bool  # a district or township office may handle it too
    titles: tuple[str, ...]
    bodies: tuple[str, ...]
    action: str  # what a department did to resolve it
    partial: str  # what was done so far, when partly resolved
    explain: str  # the explanation given when nothing can be changed


TOPICS: tuple[Topic, ...] = (
    Topic("streetlight", ("complaint", "help", "suggestion"), ("urban-management",), True,
          ("{estate}门口路灯损坏{dur}无人修", "{road}一段路灯不亮，夜间出行不安全",
           "建议在{road}靠近{estate}路段增设路灯"),
          ("{road}靠近{estate}一侧有{n}盏路灯已经{dur}不亮了，晚上路面漆黑。\n老人和孩子晚上出门很不安全，前几天还有人在这里摔倒。\n希望有关部门尽快派人维修。",
           "{estate}南门外的路灯时亮时不亮，已经持续{dur}。\n附近有学校，晚自习放学的学生都走这条路。\n请尽快检修。"),
          "已安排路灯养护单位更换损坏的灯具和线路，目前路灯已恢复正常照明",
          "已更换其中大部分损坏灯具，剩余线路故障需开挖检修",
          "该路段路灯属于小区内部设施，由小区物业负责维护，我们已督促物业尽快维修"),
    Topic("noise", ("complaint", "report"), ("environment", "public-security", "urban-management"), True,
          ("{estate}附近工地夜间施工噪音扰民", "{road}一家{shop}夜里音响声音太大",
           "{estate}楼下广场舞音量过大"),
          ("{estate}旁边的工地每天晚上十一点以后还在施工，机器声音很大。\n已经持续{dur}，家里老人孩子无法入睡。\n请有关部门依法查处夜间违规施工。",
           "{road}{n}号的{shop}每天营业到凌晨两三点，音响声音很大。\n住在楼上的居民根本睡不着，多次沟通无果。\n希望管一管。"),
          "执法人员已到现场检查，责令施工单位停止夜间作业，并对其违规行为依法立案处理",
          "已约谈相关经营者，要求其降低音量，后续将加强夜间巡查",
          "经核查，该工地已办理夜间施工许可，系连续浇筑混凝土的必要作业，我们已要求其采取降噪措施"),
    Topic("wages", ("complaint", "help", "consultation"), ("human-resources",), True,
          ("{company}拖欠工资{dur}未发", "工地拖欠农民工工资，讨要无果", "咨询被拖欠工资如何维权"),
          ("我在{district}{company}上班，公司已经{dur}没有发工资了，涉及工友{n}人。\n多次找老板要，一直推说没钱。\n请求劳动监察部门帮忙追讨。",
           "去年在{road}附近的工地干活，包工头拖欠工钱至今未付。\n找了很多次都找不到人，过年回家的路费都没有。\n希望政府帮忙解决。"),
          "劳动保障监察大队已约谈用人单位负责人，督促其足额支付拖欠的工资，相关款项已发放到位",
          "用人单位已支付部分工资，剩余款项承诺分期支付，监察大队将跟踪督办",
          "被拖欠工资可向劳动保障监察机构投诉，也可申请劳动争议仲裁，所需材料包括劳动合同、考勤记录或工资流水等"),
    Topic("school-place", ("consultation", "suggestion", "complaint"), ("education",), False,
          ("咨询{school}学区划分及入学条件", "孩子随迁入学需要准备哪些材料", "建议增加{district}公办学位供给"),
          ("我家住在{estate}，孩子明年上小学。\n想咨询一下对口的是不是{school}，需要提前准备哪些材料。\n谢谢。",
           "我们是外地来明湖工作的，孩子今年要上初中。\n请问随迁子女入学需要居住证满多长时间，去哪里报名？"),
          "已就学区划分和报名流程向您作了答复，相关材料清单已在市教育局网站公布",
          "已向您说明现行政策，新建学校的学位安排将在招生方案中另行公布",
          "{estate}对口学校为{school}，报名需提供户口簿、房产证明或居住证及儿童预防接种证明"),
    Topic("medical-insurance", ("consultation", "complaint", "help"), ("human-resources", "health"), False,
          ("异地就医医保报销比例咨询", "{hospital}医保结算系统故障无法报销", "门诊慢特病报销申请一直未办理"),
          ("我父亲在外地住院，想问一下异地就医备案后在当地直接结算的报销比例是多少。\n没有备案的话回来怎么报销？",
           "前几天在{hospital}看病，收费处说医保系统故障，只能自费，让我以后再来报销。\n已经跑了{n}次还没办好。\n希望尽快处理。"),
          "经协调，医院已为您完成医保结算，自费部分已按规定退回",
          "已为您办理部分费用的报销，其余票据需补充材料后再行审核",
          "已备案的异地住院费用可直接结算，报销比例按参保地政策执行；未备案的可凭票据回参保地手工报销"),
    Topic("water-outage", ("complaint", "help", "consultation"), ("water",), True,
          ("{estate}停水{dur}，没有任何通知", "{road}附近自来水发黄有异味", "{estate}水压太低，高层用不上水"),
          ("{estate}从前天早上开始停水，到现在已经{dur}了。\n事先没有任何通知，小区里很多老人生活很不方便。\n请问什么时候恢复供水？",
           "最近家里的自来水发黄，烧开后有一股异味。\n住在{road}附近的邻居也是这样。\n担心水质有问题，请水务部门来检测。"),
          "维修人员已抢修完毕管网破损点并冲洗管道，目前供水和水质均已恢复正常",
          "主管道已修复，个别楼栋二次供水设施仍在检修",
          "停水系市政管网改造所致，已提前在小区公告栏张贴通知，我们将改进通知方式"),
    Topic("parking", ("complaint", "report", "suggestion"), ("public-security", "urban-management"), True,
          ("{road}人行道上车辆乱停乱放", "{estate}消防通道被私家车长期占用", "建议{road}增设停车泊位"),
          ("{road}{n}号附近的人行道上每天停满了车，行人只能走机动车道。\n早晚高峰非常危险。\n请交警部门加强管理。",
           "{estate}的消防通道被几辆私家车长期占用，物业劝说无效。\n万一发生火灾后果不堪设想。"),
          "交警部门已对违停车辆依法处理，并在该路段加装了隔离桩",
          "已对违停车辆进行了处罚，后续将增加巡查频次",
          "该区域属于小区内部道路，由物业负责管理，我们已督促物业规范停车秩序"),
    Topic("vending", ("complaint", "report"), ("urban-management",), True,
          ("{road}夜市摊贩占道经营影响通行", "{estate}门口流动摊贩占道经营"),
          ("每天傍晚开始，{road}两侧摆满了摊位，占用了整条人行道。\n垃圾和油污也没人清理。\n请城管部门规范管理。",),
          "城管执法人员已对占道摊点进行清理，并引导商贩进入规划的便民市场经营",
          "已清理大部分占道摊点，将在周边设置临时疏导点",
          "该路段为区里设立的临时便民疏导点，限定时段经营，我们将督促摊主做好卫生保洁"),
    Topic("food-safety", ("complaint", "report", "consultation"), ("market-regulation",), False,
          ("{road}一家{shop}卫生条件差，疑似使用过期食材", "在{shop}购买的食品发现异物",
           "咨询小作坊食品生产许可办理条件"),
          ("昨天在{road}的{shop}吃饭，看到后厨很脏，食材随便堆在地上。\n吃完后家里两个人都拉肚子。\n请市场监管部门检查。",
           "在{district}一家{shop}买的面包里吃出了异物，商家拒绝退赔。\n小票和照片都保留着。"),
          "执法人员已对该店进行现场检查，责令其限期整改，并对违法行为立案查处",
          "已责令商家整改后厨卫生，相关抽检结果出来后将依法处理",
          "经检查未发现违法行为，已对商家进行食品安全指导，您可通过民事途径主张赔偿"),
    Topic("cooking-fumes", ("complaint", "report"), ("environment", "urban-management"), True,
          ("楼下{shop}油烟直排，窗户不敢开", "{estate}底商餐饮油烟扰民"),
          ("{estate}一楼新开了一家{shop}，油烟直接排到楼道里。\n楼上住户一年四季不敢开窗，衣服上都是油烟味。\n请有关部门督促安装油烟净化设施。",),
          "已责令该店安装油烟净化设施并规范排放，复查时油烟已经达标",
          "商家已安装净化设备，排烟管道改造正在施工",
          "经检测该店油烟排放浓度符合标准，我们已要求其定期清洗净化设施"),
    Topic("bus", ("suggestion", "consultation", "complaint"), ("transport",), False,
          ("建议{bus}路公交延长运营时间", "{bus}路公交车经常不按时到站", "咨询{bus}路公交线路调整情况"),
          ("{bus}路公交末班车是晚上八点，很多上夜班的人下班后没有车坐。\n建议延长到晚上十点。",
           "每天早上在{road}站等{bus}路车，经常等半个多小时也不来。\n上班经常迟到。"),
          "公交公司已调整{bus}路发车计划，高峰时段加密班次，末班车延后一小时",
          "已在早高峰增加两个班次，延长末班车的方案正在评估",
          "{bus}路因道路施工临时绕行，施工结束后将恢复原线路"),
    Topic("road-damage", ("complaint", "help", "suggestion"), ("transport", "urban-management"), True,
          ("{road}路面坑洼多，雨天积水严重", "{road}井盖缺失存在安全隐患"),
          ("{road}靠近{estate}的路段有好几个大坑，下雨天全是积水。\n骑电动车的人经常在这里摔倒。\n请尽快修补。",
           "{road}{n}号门口的井盖丢了，只用一个路障挡着，晚上很危险。"),
          "养护单位已对破损路面进行修补，缺失的井盖已补装",
          "已对坑槽进行临时修补，整段路面将纳入明年大修计划",
          "该路段已列入道路改造计划，施工前我们会加强巡查和临时维护"),
    Topic("property", ("complaint", "help", "consultation"), ("housing",), True,
          ("{estate}物业不作为，电梯{dur}坏了没人修", "咨询业主委员会成立程序", "{estate}物业擅自涨价"),
          ("{estate}{n}号楼的电梯已经坏了{dur}，物业一直说在等配件。\n楼里有很多老人，上下楼非常困难。\n请住建部门督促物业尽快修好。",
           "{estate}物业公司贴出通知，物业费每平方米上涨五毛。\n没有开业主大会，也没有公示成本。\n这样合规吗？"),
          "已约谈物业公司，电梯已于本周修复并经特种设备检验合格",
          "已督促物业更换电梯主要部件，整机检验正在安排",
          "物业服务收费调整需经业主大会表决，我们已要求物业暂停执行新标准并向业主公示"),
    Topic("housing-delivery", ("complaint", "consultation"), ("housing",), False,
          ("{estate}开发商逾期交房", "咨询公租房申请条件"),
          ("我在{estate}买的房子合同约定今年六月交房，现在还没有交付。\n开发商一直没有明确说法。\n请住建部门督促。",
           "请问在明湖工作、没有本地户口，可以申请公租房吗？需要什么条件？"),
          "已约谈开发企业，项目已完成竣工验收并开始分批交付",
          "已督促开发企业制订交付计划，首批楼栋已完成验收",
          "非本市户籍在本市稳定就业并连续缴纳社保满一年的，可申请公共租赁住房"),
    Topic("garbage", ("complaint", "suggestion"), ("urban-management",), True,
          ("{estate}旁垃圾站{dur}未清运，气味难闻", "建议{estate}增设分类垃圾桶"),
          ("{estate}旁边的垃圾中转站已经{dur}没有清运了，垃圾堆得很高。\n天热气味很大，还有很多蚊蝇。",),
          "环卫部门已对垃圾站进行清运和消杀，并调整了清运频次",
          "已完成积存垃圾清运，中转站除臭设备正在更换",
          "该垃圾站由小区物业负责清运，我们已督促物业按时清运"),
    Topic("prepaid-card", ("complaint", "report"), ("market-regulation",), False,
          ("{shop}预付卡商家跑路，无法退款", "{company}虚假宣传诱导消费"),
          ("我在{road}的{shop}办了一张{n}千元的会员卡，现在店门关了，老板也联系不上。\n像我这样的会员有几十个。\n请求帮助追回预付款。",),
          "经调解，经营者已为消费者办理退款",
          "已为部分消费者完成退款，其余退款方案正在协商",
          "经营者已失联，建议您向公安机关报案或向法院提起诉讼，我们将配合提供相关证据"),
    Topic("hospital-service", ("complaint", "suggestion", "consultation"), ("health",), False,
          ("{hospital}挂号难，专家号一号难求", "{hospital}急诊候诊时间过长", "建议{hospital}增加夜间门诊"),
          ("在{hospital}挂专家号，每天早上一放号就没了。\n老人不会用手机，去现场排队也挂不上。\n希望改进挂号方式。",
           "前天晚上带孩子去{hospital}急诊，候诊等了{n}个小时。\n医生太少了。"),
          "医院已增加专家号源并预留部分现场号源，同时开设老年人挂号绿色通道",
          "医院已增加部分号源，夜间门诊的排班方案正在制订",
          "急诊按病情轻重分级就诊，危重患者优先，我们已要求医院加强候诊解释和引导"),
    Topic("vaccination", ("consultation", "help"), ("health",), False,
          ("咨询儿童疫苗接种预约方式", "成人流感疫苗哪里可以接种"),
          ("孩子快满一岁了，请问麻腮风疫苗在哪里打，需要提前预约吗？",
           "请问{district}哪些社区卫生服务中心可以接种流感疫苗，费用是多少？"),
          "已为您联系辖区接种门诊完成预约",
          "已告知就近接种点，当前疫苗到货后将电话通知您",
          "儿童疫苗可在户籍或居住地社区卫生服务中心接种，通过“健康明湖”小程序预约"),
    Topic("social-security", ("consultation", "help"), ("human-resources",), False,
          ("咨询灵活就业人员社保缴费标准", "办理退休手续需要哪些材料", "社保卡补办进度查询"),
          ("我是自由职业者，想以灵活就业人员身份缴纳养老保险。\n请问缴费基数怎么选，在哪里办理？",
           "我下个月到退休年龄，请问办理退休需要准备哪些材料，去哪个窗口办？"),
          "已为您办理相关业务，结果可在“明湖人社”公众号查询",
          "已受理您的申请，部分材料需补充后办结",
          "灵活就业人员可在缴费基数上下限之间自主选择，通过线上平台或社保经办窗口办理"),
    Topic("fraud", ("report", "help", "complaint"), ("public-security",), False,
          ("{road}附近有人以低价购物为名行骗", "电动车在{estate}被盗，报警后无进展"),
          ("最近在{road}附近有人发传单，说低价卖手机，交了定金就找不到人了。\n身边已经有几个人上当。\n请警方查处。",
           "我的电动车停在{estate}楼下被偷了，当天就报了警。\n已经过去{dur}了，没有任何消息。"),
          "公安机关已立案侦查，相关嫌疑人已被依法采取措施",
          "案件正在侦查中，已调取周边监控，有进展将及时告知",
          "您反映的情况已转辖区派出所核实，可凭报警回执查询案件进展"),
    Topic("river", ("complaint", "report", "suggestion"), ("environment", "water"), True,
          ("{river}河水发黑发臭", "{river}边有企业偷排污水"),
          ("{river}靠近{road}的一段最近河水发黑，夏天臭味很重。\n住在附近的居民都不敢开窗。\n希望查一查污染源。",
           "晚上经常看到{river}边的排污口往河里排水，颜色发白，有刺鼻气味。"),
          "已查明上游一处雨污混接点并完成整改，河道水质已明显好转",
          "已封堵排污口，河道清淤工程正在进行",
          "经监测该河段水质达到功能区标准，异味系河道底泥所致，已纳入清淤计划"),
    Topic("hukou", ("consultation",), ("public-security",), False,
          ("咨询户口迁入{district}的办理流程", "新生儿落户需要哪些材料"),
          ("我在{estate}买了房，想把户口迁过来。\n请问需要哪些材料，在哪个派出所办理？",),
          "已为您预约辖区派出所户籍窗口办理",
          "已受理迁入申请，待原籍地公安机关出具迁移证后办结",
          "购房落户需提供不动产权证书和身份证件，到房屋所在地派出所户籍窗口办理"),
    Topic("tutoring", ("complaint", "report"), ("education", "market-regulation"), False,
          ("校外培训机构{company}退费难", "{company}违规开展学科培训"),
          ("给孩子在{company}报了课，交了{n}千元。\n现在机构说要搬家，不肯退剩下的课时费。\n请有关部门帮忙。",),
          "已约谈该机构负责人，机构已按剩余课时为家长退费",
          "已督促机构制订退费方案，首批退费已完成",
          "该机构经营非学科类培训，退费纠纷可依据合同约定协商，我们已提供调解"),
    Topic("drainage", ("complaint", "help"), ("water", "urban-management"), True,
          ("{estate}下水管道堵塞污水外溢", "{road}雨水井堵塞，一下雨就积水"),
          ("{estate}{n}号楼的下水道堵了，污水从一楼地漏冒出来。\n找物业说是市政管网的问题。\n请尽快处理。",),
          "已对堵塞管道进行疏通，并对周边管网进行排查",
          "已完成临时疏通，管道改造需要协调施工时间",
          "经排查，堵塞点位于小区内部管网，已指导物业进行疏通"),
    Topic("fitness", ("suggestion",), ("urban-management", "housing"), True,
          ("建议在{estate}附近增设健身设施", "建议在{road}增设公共厕所"),
          ("{estate}附近没有公园和健身器材，老人孩子没有活动的地方。\n小区旁边有一块空地，建议建成口袋公园。",),
          "您的建议已采纳，口袋公园已纳入今年的城市微更新项目",
          "已将该地块纳入规划研究，近期先增设部分健身器材",
          "该地块已规划为道路用地，暂不具备建设条件，我们将在周边另行选址"),
    Topic("taxi", ("complaint",), ("transport",), False,
          ("出租车司机拒载、绕路", "网约车司机中途甩客"),
          ("昨晚在{road}打车去{hospital}，司机嫌路近拒载。\n车牌号已记下，希望依法处理。",),
          "已查实司机拒载行为，已依法作出处罚并对其进行培训",
          "已约谈所属公司，司机的处罚正在按程序办理",
          "经调取行车记录，车辆按导航路线行驶，未发现绕路情况"),
)

ADDONS = ("之前已经多次反映，一直没有解决。", "附近居民意见很大。", "希望尽快给个答复。",
          "相关照片已上传。", "谢谢！", "麻烦相关部门重视一下。", "这个问题已经影响到正常生活。")

TRANSFER_REASONS = ("该事项不属于本单位职责，申请退回重新派单", "经核实，该问题属于{to}职责范围",
                    "事发地点位于{to}辖区，转由属地处理", "派单错误，改派{to}办理")
CLARIFY_REQUESTS = ("请补充具体地址或附近的标志性建筑，以便我们现场核实。",
                    "请提供相关的照片或票据，以便进一步调查。",
                    "请说明问题发生的具体时间段，方便我们安排夜间检查。",
                    "请补充所在单位的全称和具体楼栋号。")
CLARIFY_ANSWERS = ("具体位置在{road}{n}号附近，靠近公交站。", "照片已经补充上传。",
                   "一般是晚上十点以后到凌晨两点之间。", "在{estate}{n}号楼，东侧单元。")
EXTENSION_REASONS = ("需协调多个部门联合现场核查", "涉及管网开挖，需办理占道施工审批",
                     "需等待第三方检测结果", "当事企业负责人外出，需延后约谈",
                     "涉及历史遗留问题，需调取档案资料")
EXTENSION_APPROVALS = ("理由充分，同意延期", "同意延期，请按新的期限办结")
EXTENSION_REFUSALS = ("延期理由不充分，请按原期限办结", "该事项可在原期限内办结，不予延期")
REOPEN_REASONS = ("市民对办理结果不满意，要求重新办理", "回访核实问题仍未解决，退回重办",
                  "答复内容与实际情况不符，重新交办")
WITHDRAW_REASONS = ("问题已经自行解决", "已与对方协商解决", "重复提交，撤回本件", "不想再追究了")
COMMENTS = {
    "satisfied": ("处理很及时，谢谢！", "问题已经解决，点赞。", "工作人员态度很好。"),
    "basically_satisfied": ("基本解决了，希望以后加强管理。", "处理得有点慢，但总算解决了。",
                            "答复清楚，但还需要跟踪。"),
    "dissatisfied": ("问题根本没有解决，只是敷衍答复。", "答复与实际情况不符。",
                     "拖了这么久才回复，还是老样子。"),
}
REJECT_NOTES = {
    "duplicate": "与此前受理的诉求内容相同，已合并办理",
    "abusive": "内容含有侮辱性语言，请文明表述后重新提交",
    "not_a_petition": "内容不属于诉求事项",
    "contains_personal_data": "内容含有他人个人信息，请删除后重新提交",
    "out_of_scope": "该事项属于司法程序处理范围，请通过相应途径解决",
    "spam": "广告信息",
}
CORRECTION_REASONS = ("答复中办理日期写错", "补充办理结果说明", "误发的阶段性答复，予以撤回",
                      "标题中含有门牌号，予以遮盖")
NOTES = {
    "assigned": ("请按时限办理", "市民情绪较急，请优先处理", "请属地配合核查"),
    "accepted": ("已安排专人办理", "已签收，正在核实"),
    "closed": ("经审核，答复内容符合要求，予以办结", "已回访，办结"),
}
